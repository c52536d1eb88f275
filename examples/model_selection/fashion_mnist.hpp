// Fashion-MNIST from Debian's dataset-fashion-mnist package: gzip-compressed IDX
// files, checked before anything trains. A missing, truncated or corrupt file
// stops the run with an error that names the file and the package.
#pragma once

#include <zlib.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"

namespace fashion_mnist {

inline constexpr char const* default_directory = "/usr/share/datasets/fashion-mnist";
inline constexpr char const* package = "dataset-fashion-mnist";

class data_error : public hydra::error {
public:
  data_error(std::string const& file, std::string const& what)
      : hydra::error(file + ": " + what + " (the file comes from the Debian package " + package + ": apt-get install " +
                     package + ")") {}
};

// The whole decompressed content of a .gz file.
inline std::vector<std::uint8_t> read_gzip(std::string const& path) {
  if (!std::filesystem::exists(path)) throw data_error(path, "missing");
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
  std::size_t features = 0;  // after downsampling
  std::vector<float> images; // count x features, in [0, 1]
  std::vector<std::int32_t> labels;
};

// "train" or "t10k" from `directory`, at most `limit` images (0: all), each
// 28x28 image averaged over 2x2 blocks to 14x14 (196 features).
inline split load(std::string const& directory, std::string const& name, std::size_t limit = 0) {
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
  out.features = 14 * 14;
  out.images.resize(out.count * out.features);
  for (std::size_t n = 0; n < out.count; ++n) {
    std::uint8_t const* image = images.data.data() + n * 28 * 28;
    for (std::size_t r = 0; r < 14; ++r)
      for (std::size_t c = 0; c < 14; ++c) {
        unsigned const sum = image[(2 * r) * 28 + 2 * c] + image[(2 * r) * 28 + 2 * c + 1] +
                             image[(2 * r + 1) * 28 + 2 * c] + image[(2 * r + 1) * 28 + 2 * c + 1];
        out.images[n * out.features + r * 14 + c] = static_cast<float>(sum) / (4.0F * 255.0F);
      }
    out.labels.push_back(static_cast<std::int32_t>(labels.data[n]));
  }
  return out;
}

} // namespace fashion_mnist
