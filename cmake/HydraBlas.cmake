# HYDRA_HOST_BLAS: the host layers' matrix products (dense, and convolution as
# im2col + GEMM) on OpenBLAS's cblas_sgemm. AUTO uses OpenBLAS when it is found
# (Debian: libopenblas-dev); ON requires it; OFF keeps hydra's own loops, so the
# library builds without any BLAS. The result is HYDRA_HOST_BLAS_ENABLED and,
# when it is true, hydra::hydra links BLAS::BLAS, sees OpenBLAS's cblas.h and
# defines HYDRA_WITH_OPENBLAS.
#
# OpenBLAS specifically, not any BLAS: hydra keeps it single-threaded inside
# each stream with openblas_set_num_threads (layers/detail/gemm.hpp), and a
# vendor-neutral cblas.h (Debian's reference one, say) does not declare it.
set(HYDRA_HOST_BLAS AUTO CACHE STRING "Host layers on OpenBLAS: AUTO (when found), ON (required) or OFF (plain loops)")
set_property(CACHE HYDRA_HOST_BLAS PROPERTY STRINGS AUTO ON OFF)
set(HYDRA_HOST_BLAS_ENABLED OFF)
string(TOUPPER "${HYDRA_HOST_BLAS}" _hydra_blas_mode)

if(NOT _hydra_blas_mode STREQUAL "OFF")
  # Debian keeps each OpenBLAS variant's headers in its own folder under
  # include/<arch>; upstream's install puts them in include/ or include/openblas.
  set(HYDRA_OPENBLAS_HEADER_SUFFIXES openblas openblas-pthread openblas-openmp openblas-serial)
  string(JOIN " " HYDRA_OPENBLAS_HEADER_SUFFIXES_TEXT ${HYDRA_OPENBLAS_HEADER_SUFFIXES}) # for the package config
  set(_hydra_saved_vendor "${BLA_VENDOR}")
  set(BLA_VENDOR OpenBLAS)
  find_package(BLAS QUIET)
  set(BLA_VENDOR "${_hydra_saved_vendor}")
  find_path(HYDRA_OPENBLAS_INCLUDE_DIR openblas_config.h PATH_SUFFIXES ${HYDRA_OPENBLAS_HEADER_SUFFIXES}
    DOC "Directory holding OpenBLAS's cblas.h and openblas_config.h")
  if(BLAS_FOUND AND HYDRA_OPENBLAS_INCLUDE_DIR)
    set(HYDRA_HOST_BLAS_ENABLED ON)
  elseif(_hydra_blas_mode STREQUAL "ON")
    message(FATAL_ERROR "HYDRA_HOST_BLAS=ON but OpenBLAS is missing: library found='${BLAS_FOUND}' "
                        "(${BLAS_LIBRARIES}), headers '${HYDRA_OPENBLAS_INCLUDE_DIR}'. Debian: apt-get install "
                        "libopenblas-dev; or configure with -DHYDRA_HOST_BLAS=OFF for the plain loops")
  endif()
endif()

# Also in the cache, where scripts read it (scripts/dev.sh bench).
set(HYDRA_HOST_BLAS_ENABLED ${HYDRA_HOST_BLAS_ENABLED} CACHE INTERNAL "hydra's host layers run on OpenBLAS")

if(HYDRA_HOST_BLAS_ENABLED)
  target_link_libraries(hydra INTERFACE BLAS::BLAS)
  target_include_directories(hydra SYSTEM INTERFACE $<BUILD_INTERFACE:${HYDRA_OPENBLAS_INCLUDE_DIR}>)
  target_compile_definitions(hydra INTERFACE HYDRA_WITH_OPENBLAS)
  message(STATUS "hydra: host layers on OpenBLAS (${BLAS_LIBRARIES}; headers in ${HYDRA_OPENBLAS_INCLUDE_DIR})")
else()
  message(STATUS "hydra: host layers on plain loops (HYDRA_HOST_BLAS=${HYDRA_HOST_BLAS})")
endif()
