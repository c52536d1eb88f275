# install + export: find_package(hydra CONFIG REQUIRED [COMPONENTS cuda json mpi])
# then hydra::hydra, and hydra::cuda, hydra::json and hydra::mpi where they were installed
# and their dependencies are found (cmake/hydraConfig.cmake.in). Each
# component has an export set of its own, so that a consumer who does not use
# it never needs its dependencies.
include(CMakePackageConfigHelpers)
set(_hydra_package_dir ${CMAKE_INSTALL_LIBDIR}/cmake/hydra)

install(TARGETS hydra EXPORT hydraTargets FILE_SET HEADERS)
install(EXPORT hydraTargets NAMESPACE hydra:: DESTINATION ${_hydra_package_dir})

# Without a component's dependency its headers are still installed, for a
# later build that has it.
if(HYDRA_CUDA_ENABLED)
  install(TARGETS hydra_cuda EXPORT hydraCudaTargets FILE_SET HEADERS FILE_SET device_headers)
  install(EXPORT hydraCudaTargets NAMESPACE hydra:: DESTINATION ${_hydra_package_dir})
else()
  install(FILES ${PROJECT_SOURCE_DIR}/include/hydra/cuda.hpp ${PROJECT_SOURCE_DIR}/include/hydra/cuda.cuh
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hydra)
  foreach(_part backend layers train)
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/hydra/${_part}/cuda DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hydra/${_part})
  endforeach()
endif()
if(HYDRA_JSON_ENABLED)
  install(TARGETS hydra_json EXPORT hydraJsonTargets FILE_SET HEADERS)
  install(EXPORT hydraJsonTargets NAMESPACE hydra:: DESTINATION ${_hydra_package_dir})
else()
  install(FILES ${PROJECT_SOURCE_DIR}/include/hydra/json.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hydra)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/hydra/json DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hydra)
endif()
if(HYDRA_MPI_ENABLED)
  install(TARGETS hydra_mpi EXPORT hydraMpiTargets FILE_SET HEADERS)
  install(EXPORT hydraMpiTargets NAMESPACE hydra:: DESTINATION ${_hydra_package_dir})
else()
  install(FILES ${PROJECT_SOURCE_DIR}/include/hydra/mpi.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hydra)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/hydra/mpi DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hydra)
endif()
if(HYDRA_BUILD_SIM)
  install(TARGETS hydra_sim RUNTIME)
endif()

configure_package_config_file(cmake/hydraConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/hydraConfig.cmake
  INSTALL_DESTINATION ${_hydra_package_dir})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/hydraConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/hydraConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/hydraConfigVersion.cmake
  DESTINATION ${_hydra_package_dir})
