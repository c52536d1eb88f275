# Runs PROGRAM with the stub CUDA driver in STUB_DRIVER first on the library
# path, and checks that it fails (exit 1) saying CUDA is broken: a skip (77)
# there would let a GPU machine with a bad driver look like one without a GPU.
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env "LD_LIBRARY_PATH=${STUB_DRIVER}:$ENV{LD_LIBRARY_PATH}" HYDRA_REQUIRE_GPU= ${PROGRAM}
  RESULT_VARIABLE status
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
message(STATUS "${PROGRAM} with the stub driver: exit ${status}\n${output}")
if(NOT status EQUAL 1 OR NOT output MATCHES "FAILED: [^:]+: CUDA is broken on this machine")
  message(FATAL_ERROR "expected exit 1 and 'FAILED: <program>: CUDA is broken on this machine', got exit ${status}")
endif()
