# Per-target build settings: warnings and sanitizers are applied PRIVATE to each of our targets,
# never through global flags, so a parent project that adds coronet keeps its own.

# coronet_set_warnings(<target>): the warning set every coronet target builds with; errors
# when CORONET_WARNINGS_AS_ERRORS is on (the dev presets).
function(coronet_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wsign-conversion -Wnon-virtual-dtor -Wold-style-cast)
  # GCC 12 pairs the inlined coroutine-frame deallocation with the wrong operator new when the
  # frame type has class-specific ones, as Asio's awaitable frames do (GCC bug 109224): every
  # report is false, so this one check is off for GCC.
  target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete>)
  if(CORONET_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# coronet_set_sanitizers(<target>): instruments the target with CORONET_SANITIZE
# ("address;undefined" or "thread"); a no-op when it is empty.
function(coronet_set_sanitizers target)
  if(CORONET_SANITIZE)
    list(JOIN CORONET_SANITIZE "," _sanitizers)
    target_compile_options(${target} PRIVATE -fsanitize=${_sanitizers} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${_sanitizers})
    if("undefined" IN_LIST CORONET_SANITIZE)
      # clang 14 cannot emit UBSan's function-type check for the parts a coroutine is split
      # into ("Cannot represent a difference across sections", LLVM issue 49689): that one
      # check is off for clang, the others stay.
      target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:Clang>:-fno-sanitize=function>)
    endif()
    if("thread" IN_LIST CORONET_SANITIZE)
      # GCC warns that TSan does not model std::atomic_thread_fence, which Asio's headers use;
      # the warning is about those headers, not about code TSan checks for us.
      target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-Wno-tsan>)
    endif()
  endif()
endfunction()

# coronet_unity_build(<target>): compiles the target's files in batches when CORONET_UNITY_BUILD
# is on. Each file is then included by the batch's source rather than compiled as the main file,
# and g++ 12 takes the coroutine frames it builds for that file's lambdas and anonymous-namespace
# types to be types of a header shared between translation units: -Wsubobject-linkage then
# reports every such frame. The frames are local to the one batch, so the check is off for them.
function(coronet_unity_build target)
  set_target_properties(${target} PROPERTIES UNITY_BUILD ${CORONET_UNITY_BUILD})
  if(CORONET_UNITY_BUILD)
    target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-Wno-subobject-linkage>)
  endif()
endfunction()

# coronet_program(<target>): settings for every executable and test of the project.
function(coronet_program target)
  coronet_set_warnings(${target})
  coronet_set_sanitizers(${target})
  target_link_libraries(${target} PRIVATE coronet::coronet)
endfunction()

# coronet_test_code(<target>): coronet_program's settings, for test code, which is compiled
# without optimisation whatever the preset: it is then debuggable as it stands, and g++ compiles
# it two to three times faster than at -O2. What the tests exercise keeps the preset's flags:
# the library, and the example and benchmark programs they run.
function(coronet_test_code target)
  coronet_program(${target})
  target_compile_options(${target} PRIVATE -O0)
endfunction()
