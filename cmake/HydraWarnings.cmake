# Settings for hydra's own tests, benchmarks and examples (never for users of
# hydra::hydra): all warnings, as errors; and no floating-point contraction, so
# that the bitwise comparisons against the independent reference do not depend
# on where a compiler chose to fuse a multiply-add.
add_library(hydra_project_settings INTERFACE)
target_compile_options(hydra_project_settings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Werror -ffp-contract=off>
  $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Wall,-Wextra,-Werror>)
