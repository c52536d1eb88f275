// hydra's version, kept in step with project(VERSION) in CMakeLists.txt.
#pragma once

#define HYDRA_VERSION_MAJOR 0
#define HYDRA_VERSION_MINOR 1
#define HYDRA_VERSION_PATCH 0

namespace hydra {
inline constexpr int version_major = HYDRA_VERSION_MAJOR;
inline constexpr int version_minor = HYDRA_VERSION_MINOR;
inline constexpr int version_patch = HYDRA_VERSION_PATCH;
} // namespace hydra
