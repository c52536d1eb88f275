#include <doctest/doctest.h>

#include <string>

#include "hydra/core/error.hpp"

using namespace hydra::literals;

TEST_CASE("out_of_memory names the resource, the request, the use, the capacity and the largest free block") {
  hydra::out_of_memory const failure("device 1 pool", 3_MiB, 1_MiB, 4_MiB, 2_MiB);
  std::string const text = failure.what();
  CHECK(text.find("device 1 pool") != std::string::npos);
  CHECK(text.find("cannot allocate 3145728 bytes") != std::string::npos);
  CHECK(text.find("in use 1048576 bytes") != std::string::npos);
  CHECK(text.find("capacity 4194304 bytes") != std::string::npos);
  CHECK(text.find("largest free block 2097152 bytes") != std::string::npos);
  CHECK(failure.requested() == 3_MiB);
  CHECK(failure.in_use() == 1_MiB);
  CHECK(failure.capacity() == 4_MiB);
  CHECK(failure.largest_free_block() == 2_MiB);
}

TEST_CASE("every hydra exception derives from hydra::error") {
  CHECK_THROWS_AS(throw hydra::out_of_memory("x", 1, 0, 0, 0), hydra::error);
  CHECK_THROWS_AS(throw hydra::invalid_argument("x"), hydra::error);
  CHECK_THROWS_AS(throw hydra::stream_error("x"), hydra::error);
  CHECK_THROWS_AS(hydra::detail::expects(false, "broken"), hydra::invalid_argument);
  CHECK_NOTHROW(hydra::detail::expects(true, "fine"));
}
