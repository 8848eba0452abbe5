# CPack installs this build tree into its staging folder, which rewrites the tree's
# install_manifest.txt with the package's paths (/usr/...): `make uninstall` would then
# delete the files of an installed package instead of those of the last `make install`.
# CPack runs this script before that install (CPACK_INSTALL_SCRIPTS) to keep a copy of the
# manifest, and cpack_manifest_restore.cmake before it packs (CPACK_PRE_BUILD_SCRIPTS).
file(REMOVE "${CPACK_CURLCACHE_MANIFEST}.kept")
if(EXISTS "${CPACK_CURLCACHE_MANIFEST}")
  file(COPY_FILE "${CPACK_CURLCACHE_MANIFEST}" "${CPACK_CURLCACHE_MANIFEST}.kept")
endif()
