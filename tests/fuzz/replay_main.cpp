// replay_<target>: runs inputs through a fuzz target without libFuzzer, so that every build
// (g++, clang, the sanitizer presets) checks the seed corpus and every crash ever found.
//
// Usage: replay_<target> PATH...   each PATH a file, or a directory whose files are each run.
// Exits 0 when every input passed; a broken invariant aborts on the input it names last.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

// The files of `path`, sorted, or `path` itself; none when it does not exist.
std::vector<fs::path> inputs_of(const fs::path& path) {
  std::vector<fs::path> files;
  if (fs::is_directory(path)) {
    for (const auto& entry : fs::directory_iterator(path)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
  } else if (fs::is_regular_file(path)) {
    files.push_back(path);
  }
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " FILE_OR_DIRECTORY...\n";
    return 2;
  }
  std::size_t count = 0;
  for (int k = 1; k < argc; ++k) {
    const fs::path path(argv[k]);
    if (!fs::exists(path)) {
      std::cerr << "replay: no such file or directory: " << path.string() << '\n';
      return 2;
    }
    for (const auto& file : inputs_of(path)) {
      // Named before it runs: an input that aborts is the last one named.
      std::cout << "replay: " << file.string() << std::endl;
      std::ifstream in(file, std::ios::binary);
      const std::vector<char> bytes{std::istreambuf_iterator<char>(in),
                                    std::istreambuf_iterator<char>()};
      if (!in.good() && !in.eof()) {
        std::cerr << "replay: cannot read " << file.string() << '\n';
        return 2;
      }
      static const std::uint8_t nothing = 0;  // libFuzzer never passes a null pointer either
      LLVMFuzzerTestOneInput(
          bytes.empty() ? &nothing : reinterpret_cast<const std::uint8_t*>(bytes.data()),
          bytes.size());
      ++count;
    }
  }
  std::cout << "replay: " << count << " inputs passed\n";
  return 0;
}
