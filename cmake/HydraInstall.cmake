# install + export: find_package(hydra CONFIG REQUIRED) then hydra::hydra (and
# hydra::cuda when hydra was installed with its CUDA parts).
include(CMakePackageConfigHelpers)

# The header file sets carry the headers (CUDA ones with hydra_cuda). Without the
# CUDA parts, their headers are still installed, for a later CUDA-enabled build.
set(_hydra_exported hydra)
if(HYDRA_CUDA_ENABLED)
  list(APPEND _hydra_exported hydra_cuda)
else()
  install(FILES ${PROJECT_SOURCE_DIR}/include/hydra/cuda.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hydra)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/hydra/backend/cuda DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hydra/backend)
endif()
install(TARGETS ${_hydra_exported} EXPORT hydraTargets FILE_SET HEADERS)
install(EXPORT hydraTargets NAMESPACE hydra:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hydra)

configure_package_config_file(cmake/hydraConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/hydraConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hydra)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/hydraConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/hydraConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/hydraConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hydra)
