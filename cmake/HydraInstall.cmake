# install + export: find_package(hydra CONFIG REQUIRED) then hydra::hydra (and
# hydra::cuda when hydra was installed with its CUDA parts).
include(CMakePackageConfigHelpers)

install(DIRECTORY include/hydra DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set(_hydra_exported hydra)
if(HYDRA_CUDA_ENABLED)
  list(APPEND _hydra_exported hydra_cuda)
endif()
install(TARGETS ${_hydra_exported} EXPORT hydraTargets)
install(EXPORT hydraTargets NAMESPACE hydra:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hydra)

configure_package_config_file(cmake/hydraConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/hydraConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hydra)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/hydraConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/hydraConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/hydraConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hydra)
