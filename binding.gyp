{
  # The same sources, defines and flags as CMakeLists.txt (the cmake-js build).
  "targets": [
    {
      "target_name": "neuralnet_mlp",
      "sources": [
        "native/binding/addon.cpp",
        "native/kernels/mlp.cpp",
        "native/kernels/simd.cpp",
        "native/kernels/avx2.cpp",
        "native/kernels/avx512.cpp",
        "native/kernels/cpu.cpp"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_CPP_EXCEPTIONS",
        # Any std::exception escaping an entry point becomes a JavaScript Error (node-addon-api
        # 8, which package.json requires) instead of terminating the process.
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        # An error raised while a worker thread is being terminated cannot reach JavaScript;
        # without this node-addon-api aborts the whole process.
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions", "-O2", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=c++17", "-O2"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-ffp-contract=off", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-Wall", "-Wextra", "-ffp-contract=off", "-fvisibility=hidden"],
      "conditions": [
        # Keeps jumps from crossing or ending at 32-byte boundaries: on Zen 5 a loop whose
        # closing branch crossed a 64-byte line ran the layer-1 gradient's counting sort up to
        # 1.8x slower, and where the branch lands moved with every unrelated change to the file.
        ["target_arch=='x64' and OS=='linux'", {
          "cflags_cc": ["<!@(node scripts/branch-align-flag.mjs)"]
        }]
      ],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_OPTIMIZATION_LEVEL": "3",
        "OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off", "-fvisibility=hidden"]
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17", "/O2"] }
      }
    }
  ]
}
