# cmake -P script behind the "package: <mode>" tests. MODE is find_package
# (install hydra to a fresh prefix, then find it) or add_subdirectory.
file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_source ${CMAKE_CURRENT_LIST_DIR}/consumer)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "failed (${status}): ${ARGN}\n${out}")
  endif()
  message(STATUS "${out}")
endfunction()

if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} --install ${HYDRA_BINARY_DIR} --prefix ${WORK_DIR}/prefix)
  set(configure_args -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
  set(configure_args -DHYDRA_SOURCE_DIR=${HYDRA_SOURCE_DIR})
endif()

run(${CMAKE_COMMAND} -S ${consumer_source} -B ${WORK_DIR}/build -G ${GENERATOR} ${configure_args})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)
