# Debian packages, one per service, built by CPack's DEB generator from the
# install components (packaging/CMakeLists.txt installs the units, sysusers.d,
# tmpfiles.d and man pages):
#   cmake --build build --target package     (or: cd build && cpack)
# The library dependencies come from dpkg-shlibdeps on the binaries; what
# they load at run time or call from the maintainer scripts is named here.

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tether)
set(CPACK_PACKAGE_VENDOR "tether")
set(CPACK_PACKAGE_CONTACT "The tether project")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# Each package's description starts with its own summary line.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "")
# Stage with DESTDIR and CMAKE_INSTALL_PREFIX /usr, whatever the build tree's
# prefix: the units are written with the paths the package installs to.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENTS_ALL)

# tether_deb_package(COMPONENT PACKAGE UNIT STATE_DIR SUMMARY DEPENDS
#                    [CONFFILES FILE...]): the Debian package PACKAGE made of
# the install component COMPONENT, with maintainer scripts (packaging/debian)
# that create its user and state directory and never start UNIT.
macro(tether_deb_package component package unit state_dir summary depends)
    cmake_parse_arguments(P "" "" "CONFFILES" ${ARGN})
    string(TOUPPER ${component} P_UPPER)
    set(TETHER_PACKAGE ${package})
    set(TETHER_UNIT ${unit})
    set(TETHER_STATE_DIR ${state_dir})
    set(TETHER_SYSUSERS ${package}.conf)
    set(TETHER_TMPFILES ${package}.conf)
    set(P_DIR ${CMAKE_BINARY_DIR}/packaging/debian/${package})
    set(P_CONTROL)
    foreach(script postinst prerm postrm)
        configure_file(${PROJECT_SOURCE_DIR}/packaging/debian/${script}.in ${P_DIR}/${script}
                       @ONLY FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
                       GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
        list(APPEND P_CONTROL ${P_DIR}/${script})
    endforeach()
    if(P_CONFFILES)
        list(JOIN P_CONFFILES "\n" P_CONFFILES)
        file(WRITE ${P_DIR}/conffiles "${P_CONFFILES}\n")
        list(APPEND P_CONTROL ${P_DIR}/conffiles)
    endif()
    list(APPEND CPACK_COMPONENTS_ALL ${component})
    set(CPACK_DEBIAN_${P_UPPER}_PACKAGE_NAME ${package})
    set(CPACK_DEBIAN_${P_UPPER}_DESCRIPTION "${summary}")
    set(CPACK_DEBIAN_${P_UPPER}_PACKAGE_DEPENDS "${depends}")
    set(CPACK_DEBIAN_${P_UPPER}_PACKAGE_CONTROL_EXTRA "${P_CONTROL}")
endmacro()

# The agent loads its TCTI (libtss2-tcti-device) with dlopen, which
# dpkg-shlibdeps cannot see; tpm-udev gives /dev/tpmrm0 to the tss group;
# procps has the /bin/kill of the unit's ExecReload.
tether_deb_package(agent tether-agent tether-agent.service /var/lib/tether
    "tether agent: TPM-attested short-lived access tokens for this device
Proves with the device's TPM 2.0 that it is the enrolled device and keeps a
fresh access token in locked memory, served on a Unix socket."
    "systemd, tpm-udev, libtss2-tcti-device0, procps"
    CONFFILES /etc/tether/agent.conf)
tether_deb_package(fleetd tether-fleetd tether-fleetd.service /var/lib/tether-fleetd
    "tether fleet service and its operators' CLI
tether-fleetd enrols devices, issues attested access tokens, detects cloned
TPM states and revokes devices and tokens; tetherctl administers it."
    "systemd")
tether_deb_package(gate tether-gate tether-gate.service /var/lib/tether-gate
    "tether gateway in front of AI endpoints
tether-gate lets a request reach an OpenAI-compatible endpoint only with a
tether access token and a DPoP proof of the device's key, follows the
fleet's revocation feed, enforces model, rate and spend ceilings and keeps
the provider's key off the devices."
    "systemd")

include(CPack)
