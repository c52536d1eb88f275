# hydra::json: the JSON files (include/hydra/json.hpp and include/hydra/json/):
# simulator workloads, runtime profiles and Chrome traces, through nlohmann-json
# (Debian: nlohmann-json3-dev). hydra::hydra does not need it, so a trainer that
# never reads or writes these files builds without the package.
#
# HYDRA_ENABLE_JSON: AUTO (on when nlohmann-json is found), ON (required) or OFF.
# hydra's own tests and examples need it, and so does hydra-sim.
set(HYDRA_ENABLE_JSON AUTO CACHE STRING "JSON files (nlohmann-json): AUTO, ON or OFF")
set_property(CACHE HYDRA_ENABLE_JSON PROPERTY STRINGS AUTO ON OFF)

set(HYDRA_JSON_ENABLED OFF)
string(TOUPPER "${HYDRA_ENABLE_JSON}" _hydra_json_mode)
if(_hydra_json_mode STREQUAL "ON")
  find_package(nlohmann_json 3.10 CONFIG REQUIRED)
elseif(_hydra_json_mode STREQUAL "AUTO")
  find_package(nlohmann_json 3.10 CONFIG QUIET)
elseif(NOT _hydra_json_mode STREQUAL "OFF")
  message(FATAL_ERROR "HYDRA_ENABLE_JSON is '${HYDRA_ENABLE_JSON}': AUTO, ON or OFF")
endif()
if(nlohmann_json_FOUND AND NOT _hydra_json_mode STREQUAL "OFF")
  set(HYDRA_JSON_ENABLED ON)
endif()

set(HYDRA_JSON_HEADERS ${CMAKE_CURRENT_SOURCE_DIR}/include/hydra/json.hpp)
file(GLOB _hydra_json_parts CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/include/hydra/json/*.hpp)
list(APPEND HYDRA_JSON_HEADERS ${_hydra_json_parts})

if(HYDRA_JSON_ENABLED)
  add_library(hydra_json INTERFACE)
  add_library(hydra::json ALIAS hydra_json)
  set_target_properties(hydra_json PROPERTIES EXPORT_NAME json VERIFY_INTERFACE_HEADER_SETS ${HYDRA_VERIFY_HEADERS})
  target_sources(hydra_json INTERFACE FILE_SET HEADERS BASE_DIRS ${PROJECT_SOURCE_DIR}/include FILES ${HYDRA_JSON_HEADERS})
  target_link_libraries(hydra_json INTERFACE hydra nlohmann_json::nlohmann_json)
  message(STATUS "hydra: JSON files enabled (nlohmann-json ${nlohmann_json_VERSION})")
elseif(HYDRA_BUILD_TESTS OR HYDRA_BUILD_EXAMPLES OR HYDRA_BUILD_SIM)
  message(FATAL_ERROR "hydra's tests, examples and hydra-sim need nlohmann-json (HYDRA_ENABLE_JSON is "
                      "${HYDRA_ENABLE_JSON}): apt-get install nlohmann-json3-dev, or configure with "
                      "-DHYDRA_BUILD_TESTS=OFF -DHYDRA_BUILD_EXAMPLES=OFF -DHYDRA_BUILD_SIM=OFF")
else()
  message(STATUS "hydra: JSON files disabled (hydra::json needs nlohmann-json; HYDRA_ENABLE_JSON=${HYDRA_ENABLE_JSON})")
endif()
