// The main job's HTML report rendered by headless Chromium (Debian:
// chromium-headless-shell, or chromium) to a PNG, decoded here with zlib and
// checked to show the charts: not a blank page. Without a Chromium this
// program exits 77, which ctest reports as skipped.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <zlib.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "examples/report_check.hpp"
#include "support/scratch.hpp"

namespace fs = std::filesystem;

namespace {

std::optional<fs::path> find_chromium() {
  for (char const* name : {"chromium-headless-shell", "chromium", "chromium-browser"})
    for (char const* directory : {"/usr/bin", "/usr/local/bin"})
      if (fs::exists(fs::path(directory) / name)) return fs::path(directory) / name;
  return std::nullopt;
}

struct rgb_image {
  std::size_t width = 0, height = 0;
  std::vector<std::array<std::uint8_t, 3>> pixels; // row by row
};

std::uint32_t big_endian(std::vector<std::uint8_t> const& bytes, std::size_t at) {
  return std::uint32_t{bytes.at(at)} << 24 | std::uint32_t{bytes.at(at + 1)} << 16 |
         std::uint32_t{bytes.at(at + 2)} << 8 | std::uint32_t{bytes.at(at + 3)};
}

// An 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are):
// its IDAT chunks inflated with zlib, each row unfiltered (PNG's five filters).
rgb_image decode_png(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::uint8_t> const file{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  REQUIRE(file.size() > 8);
  REQUIRE(std::string(file.begin() + 1, file.begin() + 4) == "PNG");
  rgb_image image;
  std::size_t channels = 0;
  std::vector<std::uint8_t> compressed;
  for (std::size_t at = 8; at + 8 <= file.size();) {
    std::size_t const length = big_endian(file, at);
    std::string const type(file.begin() + static_cast<std::ptrdiff_t>(at + 4),
                           file.begin() + static_cast<std::ptrdiff_t>(at + 8));
    std::size_t const data = at + 8;
    REQUIRE(data + length + 4 <= file.size());
    if (type == "IHDR") {
      image.width = big_endian(file, data);
      image.height = big_endian(file, data + 4);
      REQUIRE(file[data + 8] == 8);                          // bit depth
      REQUIRE((file[data + 9] == 2 || file[data + 9] == 6)); // RGB or RGBA
      REQUIRE(file[data + 12] == 0);                         // not interlaced
      channels = file[data + 9] == 2 ? 3 : 4;
    } else if (type == "IDAT") {
      compressed.insert(compressed.end(), file.begin() + static_cast<std::ptrdiff_t>(data),
                        file.begin() + static_cast<std::ptrdiff_t>(data + length));
    }
    at = data + length + 4; // and its CRC
  }
  REQUIRE(channels != 0);
  std::size_t const stride = image.width * channels;
  std::vector<std::uint8_t> raw(image.height * (stride + 1));
  uLongf size = raw.size();
  REQUIRE(uncompress(raw.data(), &size, compressed.data(), compressed.size()) == Z_OK);
  REQUIRE(size == raw.size());
  std::vector<std::uint8_t> previous(stride, 0), row(stride);
  for (std::size_t y = 0; y < image.height; ++y) {
    std::uint8_t const filter = raw[y * (stride + 1)];
    std::uint8_t const* in_row = &raw[y * (stride + 1) + 1];
    for (std::size_t x = 0; x < stride; ++x) {
      int const a = x >= channels ? row[x - channels] : 0, b = previous[x];
      int const c = x >= channels ? previous[x - channels] : 0;
      int predicted = 0;
      switch (filter) {
      case 0:
        predicted = 0;
        break;
      case 1:
        predicted = a;
        break;
      case 2:
        predicted = b;
        break;
      case 3:
        predicted = (a + b) / 2;
        break;
      case 4: {
        int const p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
        predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        break;
      }
      default:
        FAIL("PNG row " << y << " has filter " << int(filter));
      }
      row[x] = static_cast<std::uint8_t>(in_row[x] + predicted);
    }
    for (std::size_t x = 0; x < image.width; ++x)
      image.pixels.push_back({row[x * channels], row[x * channels + 1], row[x * channels + 2]});
    previous = row;
  }
  return image;
}

} // namespace

TEST_CASE("the report renders in headless Chromium to a page that shows its charts") {
  auto const chromium = find_chromium();
  REQUIRE(chromium);
  auto const directory = hydra::testing::scratch_directory("report_render");
  auto o = model_selection::options{};
  o.grid = "tiny";
  o.train_subset = 384;
  o.test_subset = 500;
  o.epochs = 2;
  o.batch = 32;
  o.budget_bytes = 800 * 1024;
  o.image_side = 14;
  auto const report = report_check::make(o);
  auto const page = directory / "report.html", png = directory / "report.png";
  std::ofstream(page) << report.html;
  fs::remove(png);
  std::string const command = "timeout 120 " + chromium->string() +
                              " --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,1600"
                              " --screenshot=" +
                              png.string() + " file://" + page.string() + " > " +
                              (directory / "chromium.log").string() + " 2>&1";
  INFO(command);
  REQUIRE(std::system(command.c_str()) == 0);
  REQUIRE(fs::exists(png));
  auto const image = decode_png(png);
  CHECK(image.width == 1000);
  CHECK(image.height == 1600);
  // A blank page is one colour. The report's page is mostly white, with text,
  // each model's colour and the utilisation's blue.
  std::map<std::array<std::uint8_t, 3>, std::size_t> colours;
  for (auto const& p : image.pixels) ++colours[p];
  std::size_t const white = colours[{255, 255, 255}];
  CAPTURE(colours.size());
  CHECK(white < image.pixels.size());
  CHECK(image.pixels.size() - white > image.pixels.size() / 50); // at least 2% drawn
  CHECK(colours[{0x4e, 0x79, 0xa7}] > 1000);                     // the utilisation area, and the first curve
  CHECK(colours[{0xf4, 0xf4, 0xf4}] > 1000);                     // the utilisation rows' background
}

int main(int argc, char** argv) {
  if (!find_chromium()) {
    std::printf("skipped: no headless Chromium (Debian: apt-get install chromium-headless-shell)\n");
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
