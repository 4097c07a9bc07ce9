# Every dependency comes from Debian's packages (scripts/bootstrap.sh).
find_package(PkgConfig REQUIRED)
pkg_check_modules(TSS2 REQUIRED IMPORTED_TARGET tss2-esys tss2-mu tss2-rc tss2-tctildr)
pkg_check_modules(TSS2_MU REQUIRED IMPORTED_TARGET tss2-mu)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
# fleetd (provisioning/): the store and the HTTPS server.
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
# libmicrohttpd's TLS library: the server layer enables session tickets on it.
pkg_check_modules(GNUTLS REQUIRED IMPORTED_TARGET gnutls)
# tether-gate (gateway/): its client of the upstream AI endpoint.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
# OpenSSL's libcrypto: ECDSA verification on servers (lib's tether_crypto_openssl).
pkg_check_modules(LIBCRYPTO REQUIRED IMPORTED_TARGET libcrypto)

# Debian's mbedTLS 2.28 ships no pkg-config file.
find_path(MBEDTLS_INCLUDE_DIR mbedtls/ssl.h REQUIRED)
find_library(MBEDTLS_LIBRARY mbedtls REQUIRED)
find_library(MBEDX509_LIBRARY mbedx509 REQUIRED)
find_library(MBEDCRYPTO_LIBRARY mbedcrypto REQUIRED)
add_library(tether_mbedtls INTERFACE)
target_include_directories(tether_mbedtls SYSTEM INTERFACE ${MBEDTLS_INCLUDE_DIR})
target_link_libraries(tether_mbedtls INTERFACE
    ${MBEDTLS_LIBRARY} ${MBEDX509_LIBRARY} ${MBEDCRYPTO_LIBRARY})

if(TETHER_BUILD_TESTS)
    pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()
