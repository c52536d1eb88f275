# Settings for hydra's own tests, benchmarks and examples (never for users of
# hydra::hydra): all warnings, as errors.
add_library(hydra_project_settings INTERFACE)
target_compile_options(hydra_project_settings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Werror>
  $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Wall,-Wextra,-Werror>)
