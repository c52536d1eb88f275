# Thrust (CCCL) is header-only. hydra uses it with thrust::host from g++, so only
# the headers are needed: the CUDA toolkit's copy (CUDA 13 keeps it under
# include/cccl) or Debian's libthrust-dev. The installed package config finds it
# again on the consumer's machine (cmake/hydraConfig.cmake.in).
find_path(HYDRA_THRUST_INCLUDE_DIR thrust/version.h
  HINTS ${CUDAToolkit_INCLUDE_DIRS}
  PATHS /usr/local/cuda/include/cccl /usr/local/cuda/include /usr/include
  PATH_SUFFIXES cccl
  DOC "Directory holding thrust/version.h (CCCL)")
if(NOT HYDRA_THRUST_INCLUDE_DIR)
  message(FATAL_ERROR "hydra needs the Thrust headers (CCCL): install the CUDA toolkit or Debian's libthrust-dev, "
                      "or set HYDRA_THRUST_INCLUDE_DIR")
endif()
target_include_directories(hydra SYSTEM INTERFACE $<BUILD_INTERFACE:${HYDRA_THRUST_INCLUDE_DIR}>)
message(STATUS "hydra: Thrust headers in ${HYDRA_THRUST_INCLUDE_DIR}")
