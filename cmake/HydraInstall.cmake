# install + export: find_package(hydra CONFIG REQUIRED) then hydra::hydra (and
# hydra::cuda when hydra was installed with its CUDA parts).
include(CMakePackageConfigHelpers)

# The header file sets carry the headers (CUDA ones with hydra_cuda). Without the
# CUDA parts, their headers are still installed, for a later CUDA-enabled build.
install(TARGETS hydra EXPORT hydraTargets FILE_SET HEADERS)
if(HYDRA_CUDA_ENABLED)
  install(TARGETS hydra_cuda EXPORT hydraTargets FILE_SET HEADERS FILE_SET device_headers)
else()
  install(FILES ${PROJECT_SOURCE_DIR}/include/hydra/cuda.hpp ${PROJECT_SOURCE_DIR}/include/hydra/cuda.cuh
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hydra)
  foreach(_part backend layers train)
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/hydra/${_part}/cuda DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hydra/${_part})
  endforeach()
endif()
install(EXPORT hydraTargets NAMESPACE hydra:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hydra)

configure_package_config_file(cmake/hydraConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/hydraConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hydra)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/hydraConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/hydraConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/hydraConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hydra)
