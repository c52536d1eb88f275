# Settings for hydra's own tests, benchmarks and examples (never for users of
# hydra::hydra): all warnings, as errors; and no floating-point contraction, so
# that the bitwise comparisons against the independent reference do not depend
# on where a compiler chose to fuse a multiply-add.
#
# HYDRA_WARNINGS_AS_ERRORS (ON; CI keeps it on) may be turned off for a build on
# another compiler than the project's g++ 12, where a new warning must not cost
# the one run a lent GPU machine gives (scripts/dev.sh gpu): warnings still show.
option(HYDRA_WARNINGS_AS_ERRORS "hydra's own targets: warnings are errors" ON)
add_library(hydra_project_settings INTERFACE)
target_compile_options(hydra_project_settings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -ffp-contract=off>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
if(HYDRA_WARNINGS_AS_ERRORS)
  target_compile_options(hydra_project_settings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>
                                                          $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Werror>)
endif()
