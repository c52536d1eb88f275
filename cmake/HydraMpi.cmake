# hydra::mpi: a sweep over MPI ranks (include/hydra/mpi.hpp and include/hydra/mpi/),
# one rank per machine, each driving its own devices (Debian: libopenmpi-dev and
# openmpi-bin). hydra::hydra does not need it, and hydra/hydra.hpp does not
# include it: only a trainer that includes hydra/mpi.hpp needs MPI.
#
# HYDRA_ENABLE_MPI: AUTO (on when find_package(MPI) finds a C++-capable MPI),
# ON (required) or OFF.
set(HYDRA_ENABLE_MPI AUTO CACHE STRING "A sweep over MPI ranks (hydra::mpi): AUTO, ON or OFF")
set_property(CACHE HYDRA_ENABLE_MPI PROPERTY STRINGS AUTO ON OFF)

set(HYDRA_MPI_ENABLED OFF)
string(TOUPPER "${HYDRA_ENABLE_MPI}" _hydra_mpi_mode)
if(_hydra_mpi_mode STREQUAL "ON")
  find_package(MPI REQUIRED COMPONENTS CXX)
elseif(_hydra_mpi_mode STREQUAL "AUTO")
  find_package(MPI QUIET COMPONENTS CXX)
elseif(NOT _hydra_mpi_mode STREQUAL "OFF")
  message(FATAL_ERROR "HYDRA_ENABLE_MPI is '${HYDRA_ENABLE_MPI}': AUTO, ON or OFF")
endif()
if(MPI_CXX_FOUND AND NOT _hydra_mpi_mode STREQUAL "OFF")
  set(HYDRA_MPI_ENABLED ON)
endif()

set(HYDRA_MPI_HEADERS ${CMAKE_CURRENT_SOURCE_DIR}/include/hydra/mpi.hpp)
file(GLOB_RECURSE _hydra_mpi_parts CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/include/hydra/mpi/*.hpp)
list(APPEND HYDRA_MPI_HEADERS ${_hydra_mpi_parts})

if(HYDRA_MPI_ENABLED)
  add_library(hydra_mpi INTERFACE)
  add_library(hydra::mpi ALIAS hydra_mpi)
  set_target_properties(hydra_mpi PROPERTIES EXPORT_NAME mpi VERIFY_INTERFACE_HEADER_SETS ${HYDRA_VERIFY_HEADERS})
  target_sources(hydra_mpi INTERFACE FILE_SET HEADERS BASE_DIRS ${PROJECT_SOURCE_DIR}/include FILES ${HYDRA_MPI_HEADERS})
  target_link_libraries(hydra_mpi INTERFACE hydra MPI::MPI_CXX)
  message(STATUS "hydra: MPI sweeps enabled (MPI ${MPI_CXX_VERSION}, launcher ${MPIEXEC_EXECUTABLE})")
else()
  message(STATUS "hydra: MPI sweeps disabled (hydra::mpi needs MPI; HYDRA_ENABLE_MPI=${HYDRA_ENABLE_MPI})")
endif()
