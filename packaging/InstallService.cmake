# Runs at install time ('cmake --install', cpack) for one service, after
# tether_service() (CMakeLists.txt here) has set TETHER_SERVICE and the
# folders. Writes the unit with the paths of the prefix installed to.
if(IS_ABSOLUTE "${TETHER_BINDIR}")
    set(TETHER_FULL_BINDIR "${TETHER_BINDIR}")
else()
    set(TETHER_FULL_BINDIR "${CMAKE_INSTALL_PREFIX}/${TETHER_BINDIR}")
endif()
# As GNUInstallDirs: a /usr installation keeps its configuration in /etc.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(TETHER_FULL_SYSCONFDIR "/etc")
else()
    set(TETHER_FULL_SYSCONFDIR "${CMAKE_INSTALL_PREFIX}/etc")
endif()

configure_file("${TETHER_SERVICE_SOURCE_DIR}/systemd/${TETHER_SERVICE}.service.in"
               "${TETHER_SERVICE_BINARY_DIR}/${TETHER_SERVICE}.service" @ONLY)
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/${TETHER_SYSTEMD_UNITDIR}" TYPE FILE
     FILES "${TETHER_SERVICE_BINARY_DIR}/${TETHER_SERVICE}.service")
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/${TETHER_SYSUSERSDIR}" TYPE FILE
     FILES "${TETHER_SERVICE_SOURCE_DIR}/sysusers.d/${TETHER_SERVICE}.conf")
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/${TETHER_TMPFILESDIR}" TYPE FILE
     FILES "${TETHER_SERVICE_SOURCE_DIR}/tmpfiles.d/${TETHER_SERVICE}.conf")
if(TETHER_SERVICE_CONFIG)
    file(INSTALL DESTINATION "${TETHER_FULL_SYSCONFDIR}/tether" TYPE FILE
         FILES "${TETHER_SERVICE_SOURCE_DIR}/${TETHER_SERVICE_CONFIG}")
endif()
