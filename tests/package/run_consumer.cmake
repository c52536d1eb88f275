# cmake -P script behind the "package: <mode>" tests. MODE is
#   find_package      install hydra to a fresh prefix, then find it with its json
#                     component (and its cuda and mpi components when it was
#                     built with them); the installed files record no path of this build
#                     and the installed hydra-sim runs
#   host_only         the same prefix found with the CUDA toolkit and
#                     nlohmann-json (and MPI) hidden: hydra::hydra alone, and asking for the
#                     cuda component then fails with the reason
#   add_subdirectory  hydra as a subdirectory
#   fetch_content     hydra through FetchContent from a local path
file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_source ${CMAKE_CURRENT_LIST_DIR}/consumer)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "failed (${status}): ${ARGN}\n${out}")
  endif()
  message(STATUS "${out}")
endfunction()

if(MODE STREQUAL "find_package" OR MODE STREQUAL "host_only")
  run(${CMAKE_COMMAND} --install ${HYDRA_BINARY_DIR} --prefix ${WORK_DIR}/prefix)
  set(configure_args -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
endif()

if(MODE STREQUAL "find_package")
  file(GLOB package_files ${WORK_DIR}/prefix/lib*/cmake/hydra/*.cmake)
  foreach(file IN LISTS package_files)
    file(READ ${file} text)
    foreach(build_path ${HYDRA_SOURCE_DIR} ${HYDRA_BINARY_DIR} ${HYDRA_CUDNN_LIBRARY})
      string(FIND "${text}" "${build_path}" at)
      if(NOT at EQUAL -1)
        message(FATAL_ERROR "${file} records a path of the build machine: ${build_path}")
      endif()
    endforeach()
  endforeach()
  run(${WORK_DIR}/prefix/bin/hydra-sim --random 4 --devices 2)
  list(APPEND configure_args "-DCONSUMER_COMPONENTS=json")
  if(HYDRA_CUDNN_LIBRARY) # built with its CUDA parts: the cuda component must load here too
    list(APPEND configure_args -DCONSUMER_REQUIRE_CUDA=ON)
  endif()
  if(HYDRA_MPI) # built with MPI: the mpi component must load here too
    list(APPEND configure_args -DCONSUMER_REQUIRE_MPI=ON)
  endif()
elseif(MODE STREQUAL "host_only")
  set(hide -DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON
           -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${consumer_source} -B ${WORK_DIR}/refused -G ${GENERATOR}
                          ${configure_args} ${hide} -DCONSUMER_COMPONENTS=cuda
                  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
  string(FIND "${out}" "hydra's cuda component is not available" at)
  if(status EQUAL 0 OR at EQUAL -1)
    message(FATAL_ERROR "asking for the cuda component without the CUDA toolkit should fail with the reason:\n${out}")
  endif()
  list(APPEND configure_args ${hide} -DCONSUMER_EXPECT_HOST_ONLY=ON)
else()
  set(configure_args -DHYDRA_SOURCE_DIR=${HYDRA_SOURCE_DIR} -DCONSUMER_MODE=${MODE})
endif()

run(${CMAKE_COMMAND} -S ${consumer_source} -B ${WORK_DIR}/build -G ${GENERATOR} ${configure_args})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)
