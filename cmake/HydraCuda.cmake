# HYDRA_ENABLE_CUDA: AUTO turns the CUDA parts on when nvcc and the CUDA toolkit
# are found; ON requires them; OFF skips them. The result is HYDRA_CUDA_ENABLED
# and, when it is true, the INTERFACE target hydra::cuda (hydra plus the CUDA
# runtime, cuBLAS and cuDNN). No GPU is needed to build: only the toolkit.
set(HYDRA_CUDA_ENABLED OFF)
string(TOUPPER "${HYDRA_ENABLE_CUDA}" _hydra_cuda_mode)

if(NOT _hydra_cuda_mode STREQUAL "OFF")
  # CMake 3.25 cannot detect "native" architectures without a GPU; CUDA 13
  # dropped CMake's old default. Default to Hopper (sm_90), overridable.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures to compile for")
  endif()
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc CACHE FILEPATH "CUDA compiler")
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  find_package(CUDAToolkit QUIET)
  # cuDNN: beside the toolkit, or wherever HYDRA_CUDNN_LIBRARY (a full path,
  # e.g. a pip wheel's libcudnn.so.9) and HYDRA_CUDNN_INCLUDE_DIR point.
  find_library(HYDRA_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR})
  find_path(HYDRA_CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND HYDRA_CUDNN_LIBRARY AND HYDRA_CUDNN_INCLUDE_DIR)
    enable_language(CUDA)
    set(HYDRA_CUDA_ENABLED ON)
  elseif(_hydra_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "HYDRA_ENABLE_CUDA=ON but the CUDA parts are missing: nvcc='${CMAKE_CUDA_COMPILER}', "
                        "toolkit found='${CUDAToolkit_FOUND}', cuDNN='${HYDRA_CUDNN_LIBRARY}' (headers '${HYDRA_CUDNN_INCLUDE_DIR}')")
  endif()
endif()

if(HYDRA_CUDA_ENABLED)
  add_library(hydra_cuda INTERFACE)
  add_library(hydra::cuda ALIAS hydra_cuda)
  set_target_properties(hydra_cuda PROPERTIES EXPORT_NAME cuda)
  # cuDNN by its path in this build only: an installed hydra finds it again on
  # the consumer's machine (cmake/hydraConfig.cmake.in).
  target_link_libraries(hydra_cuda INTERFACE hydra CUDA::cudart CUDA::cublas $<BUILD_INTERFACE:${HYDRA_CUDNN_LIBRARY}>)
  target_include_directories(hydra_cuda SYSTEM INTERFACE $<BUILD_INTERFACE:${HYDRA_CUDNN_INCLUDE_DIR}>)
  target_sources(hydra_cuda INTERFACE FILE_SET HEADERS BASE_DIRS ${PROJECT_SOURCE_DIR}/include FILES ${HYDRA_CUDA_HEADERS}
                 INTERFACE FILE_SET device_headers TYPE HEADERS BASE_DIRS ${PROJECT_SOURCE_DIR}/include
                 FILES ${HYDRA_CUDA_DEVICE_HEADERS})
  # g++ checks each .hpp on its own; the .cuh ones need nvcc (the GPU tests include them).
  set_target_properties(hydra_cuda PROPERTIES VERIFY_INTERFACE_HEADER_SETS ${HYDRA_BUILD_TESTS}
                                              INTERFACE_HEADER_SETS_TO_VERIFY HEADERS)
  message(STATUS "hydra: CUDA parts enabled (toolkit ${CUDAToolkit_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
else()
  message(STATUS "hydra: CUDA parts disabled (HYDRA_ENABLE_CUDA=${HYDRA_ENABLE_CUDA})")
endif()

# CMake 3.25 does not know that nvcc 12+ speaks C++20 (CUDA_STANDARD 20 fails to
# generate), so hydra's CUDA targets pass the flag themselves.
function(hydra_cuda_use_cxx20 target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>)
endfunction()
