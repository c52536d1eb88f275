// Fashion-MNIST from Debian's dataset-fashion-mnist package: gzip-compressed IDX
// files, checked before anything trains. A missing, truncated or corrupt file
// stops the run with an error that names the file and the package.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"

namespace fashion_mnist {

inline constexpr char const* default_directory = "/usr/share/datasets/fashion-mnist";
inline constexpr char const* package = "dataset-fashion-mnist";

class data_error : public hydra::error {
public:
  data_error(std::string const& file, std::string const& what) : hydra::error(file + ": " + what + origin(file)) {}

private:
  // Installing the package mends only the package's own files.
  static std::string origin(std::string const& file) {
    std::string out = " (";
    if (file.rfind(default_directory, 0) == 0)
      out.append("the file comes from the Debian package ")
          .append(package)
          .append(": apt-get install ")
          .append(package);
    else
      out.append("--data-dir must hold Fashion-MNIST's files as the Debian package ")
          .append(package)
          .append(" installs them");
    return out.append(")");
  }
};

// The whole decompressed content of a .gz file.
inline std::vector<std::uint8_t> read_gzip(std::string const& path) {
  std::error_code failed;
  if (!std::filesystem::exists(path, failed)) throw data_error(path, "missing");
  // A FIFO or a device would block the read, or never end it.
  if (!std::filesystem::is_regular_file(path, failed)) throw data_error(path, "not a regular file");
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) throw data_error(path, "cannot be opened");
  std::vector<std::uint8_t> out;
  std::array<std::uint8_t, 1 << 16> chunk{};
  while (true) {
    int const got = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (got < 0) {
      int code = 0;
      std::string const why = gzerror(file, &code);
      gzclose(file);
      throw data_error(path, "corrupt gzip stream (" + why + ")");
    }
    if (out.empty() && got > 0 && gzdirect(file)) {
      gzclose(file);
      throw data_error(path, "not a gzip stream");
    }
    out.insert(out.end(), chunk.begin(), chunk.begin() + got);
    if (got == 0) break;
  }
  int code = 0;
  std::string const why = gzerror(file, &code);
  int const closed = gzclose(file);
  if (code != Z_OK || closed != Z_OK)
    throw data_error(path, "truncated or corrupt gzip stream (" + (code != Z_OK ? why : "bad trailer") + ")");
  return out;
}

struct idx_file {
  std::vector<std::uint32_t> dimensions;
  std::vector<std::uint8_t> data;
};

// An IDX file of unsigned bytes with `dimension_count` dimensions (magic
// 0x00000800 + dimension_count), its size checked against its header.
inline idx_file read_idx(std::string const& path, std::uint32_t dimension_count) {
  std::vector<std::uint8_t> bytes = read_gzip(path);
  auto be32 = [&](std::size_t at) {
    return (std::uint32_t{bytes[at]} << 24) | (std::uint32_t{bytes[at + 1]} << 16) |
           (std::uint32_t{bytes[at + 2]} << 8) | std::uint32_t{bytes[at + 3]};
  };
  std::size_t const header = 4 + 4 * std::size_t{dimension_count};
  if (bytes.size() < header)
    throw data_error(path, "too short for an IDX header (" + std::to_string(bytes.size()) + " bytes)");
  std::uint32_t const magic = be32(0), expected = 0x800U + dimension_count;
  if (magic != expected)
    throw data_error(path,
                     "wrong IDX magic number " + std::to_string(magic) + ", expected " + std::to_string(expected));
  idx_file out;
  std::size_t items = 1;
  for (std::uint32_t d = 0; d < dimension_count; ++d) {
    out.dimensions.push_back(be32(4 + 4 * d));
    items *= out.dimensions.back();
  }
  if (bytes.size() - header != items) {
    throw data_error(path, "holds " + std::to_string(bytes.size() - header) + " data bytes, its header says " +
                               std::to_string(items));
  }
  out.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return out;
}

struct split {
  std::size_t count = 0;
  std::size_t features = 0;  // side x side
  std::vector<float> images; // count x features, in [0, 1]
  std::vector<std::int32_t> labels;
};

// "train" or "t10k" from `directory`, at most `limit` images (0: all), at
// full resolution (side 28: 784 features) or averaged over 2x2 blocks (side
// 14: 196 features, a quarter of the first layer's work).
inline split load(std::string const& directory, std::string const& name, std::size_t limit = 0, std::size_t side = 28) {
  if (side != 28 && side != 14)
    throw hydra::invalid_argument("--image-side: " + std::to_string(side) + "; 28 (full) or 14 (2x2 averaged)");
  std::string const images_path = directory + "/" + name + "-images-idx3-ubyte.gz";
  std::string const labels_path = directory + "/" + name + "-labels-idx1-ubyte.gz";
  idx_file const images = read_idx(images_path, 3);
  idx_file const labels = read_idx(labels_path, 1);
  if (images.dimensions[1] != 28 || images.dimensions[2] != 28)
    throw data_error(images_path, "images are " + std::to_string(images.dimensions[1]) + "x" +
                                      std::to_string(images.dimensions[2]) + ", expected 28x28");
  if (images.dimensions[0] != labels.dimensions[0])
    throw data_error(labels_path, "holds " + std::to_string(labels.dimensions[0]) + " labels for " +
                                      std::to_string(images.dimensions[0]) + " images in " + images_path);
  for (std::size_t k = 0; k < labels.data.size(); ++k)
    if (labels.data[k] > 9)
      throw data_error(labels_path, "label " + std::to_string(labels.data[k]) + " of item " + std::to_string(k) +
                                        " is outside 0..9");
  split out;
  out.count = images.dimensions[0];
  if (limit > 0 && limit < out.count) out.count = limit;
  std::size_t const block = 28 / side;
  out.features = side * side;
  out.images.resize(out.count * out.features);
  for (std::size_t n = 0; n < out.count; ++n) {
    std::uint8_t const* image = images.data.data() + n * 28 * 28;
    for (std::size_t r = 0; r < side; ++r)
      for (std::size_t c = 0; c < side; ++c) {
        unsigned sum = 0;
        for (std::size_t dr = 0; dr < block; ++dr)
          for (std::size_t dc = 0; dc < block; ++dc) sum += image[(block * r + dr) * 28 + block * c + dc];
        out.images[n * out.features + r * side + c] =
            static_cast<float>(sum) / (static_cast<float>(block * block) * 255.0F);
      }
    out.labels.push_back(static_cast<std::int32_t>(labels.data[n]));
  }
  return out;
}

// Splits `all` into (training, held-out) with `held_out` images chosen by a
// seeded shuffle: the held-out images select models, the test set judges only
// the chosen one.
inline std::pair<split, split> hold_out(split const& all, std::size_t held_out, std::uint64_t seed) {
  std::vector<std::size_t> order(all.count);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed * 7'919 + 17));
  auto take = [&](std::size_t from, std::size_t to) {
    split out;
    out.count = to - from;
    out.features = all.features;
    for (std::size_t k = from; k < to; ++k) {
      std::size_t const n = order[k];
      out.images.insert(out.images.end(), all.images.begin() + static_cast<std::ptrdiff_t>(n * all.features),
                        all.images.begin() + static_cast<std::ptrdiff_t>((n + 1) * all.features));
      out.labels.push_back(all.labels[n]);
    }
    return out;
  };
  return {take(0, all.count - held_out), take(all.count - held_out, all.count)};
}

} // namespace fashion_mnist
