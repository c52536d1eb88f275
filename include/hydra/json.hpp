// hydra's JSON files, apart from hydra/hydra.hpp because they need nlohmann-json
// (CMake target hydra::json): workloads the simulator reads and writes, the
// runtime's profiles in the same format, and Chrome traces of a schedule.
#pragma once

#include "hydra/json/chrome_trace.hpp"
#include "hydra/json/document.hpp"
#include "hydra/json/profile_json.hpp"
#include "hydra/json/workload_json.hpp"
