# Puts back the install_manifest.txt that cpack_manifest_keep.cmake kept before CPack's own
# install rewrote it, or removes CPack's if there was none.
if(EXISTS "${CPACK_CURLCACHE_MANIFEST}.kept")
  file(RENAME "${CPACK_CURLCACHE_MANIFEST}.kept" "${CPACK_CURLCACHE_MANIFEST}")
else()
  file(REMOVE "${CPACK_CURLCACHE_MANIFEST}")
endif()
