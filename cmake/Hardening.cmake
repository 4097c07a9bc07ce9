# Compiler warnings and hardening shared by every target of the project.
include(CheckPIESupported)
check_pie_supported()
set(CMAKE_POSITION_INDEPENDENT_CODE ON)

# Warnings are errors for development and CI, so none goes unseen. A
# packager building with another compiler version, whose new warnings would
# otherwise stop the build, turns this off; the warnings are still shown.
option(TETHER_WERROR "Treat compiler warnings as errors" ON)

add_compile_definitions(_DEFAULT_SOURCE _GNU_SOURCE)
add_compile_options(
    -Wall -Wextra -Wshadow -Wformat=2 -Wconversion -Wsign-conversion
    -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wnull-dereference
    -fstack-protector-strong -fno-strict-aliasing)
if(TETHER_WERROR)
    add_compile_options(-Werror)
endif()
add_link_options(-Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)

if(TETHER_SANITIZE OR TETHER_FUZZ)
    # _FORTIFY_SOURCE interferes with the sanitizers' own interceptors.
    add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
else()
    # _FORTIFY_SOURCE needs optimisation; every build type but Debug has it.
    add_compile_options($<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
endif()

if(TETHER_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
        message(FATAL_ERROR "TETHER_FUZZ needs clang: configure with -DCMAKE_C_COMPILER=clang")
    endif()
    add_compile_options(-fsanitize=fuzzer-no-link)
endif()
