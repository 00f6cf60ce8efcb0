{
  "targets": [
    {
      "target_name": "resource_guard",
      "sources": [
        "native/addon.cc",
        "native/core/shared.cc",
        "native/core/machine.cc",
        "native/core/platform_linux.cc",
        "native/core/platform_darwin.cc",
        "native/core/platform_win32.cc"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-O2"],
      "cflags_cc!": ["-std=gnu++1y", "-std=gnu++14", "-std=gnu++17"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "MACOSX_DEPLOYMENT_TARGET": "10.15"
      },
      "msvs_settings": {
        "VCCLCompilerTool": {
          "AdditionalOptions": ["/std:c++17"]
        }
      },
      "conditions": [
        ["OS=='win'", {
          "defines": ["WIN32_LEAN_AND_MEAN", "NOMINMAX", "_WIN32_WINNT=0x0601"],
          "libraries": ["-lpsapi.lib"]
        }],
        ["OS=='linux'", {
          "ldflags": ["-pthread"],
          "cflags_cc": ["-pthread"]
        }]
      ]
    }
  ]
}
