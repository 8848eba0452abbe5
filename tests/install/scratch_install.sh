# Sourced by the tests that run `cmake --install` from a build tree: makes $scratch (a
# temporary folder) and saves the build tree's install_manifest.txt, which cmake --install
# overwrites; both are put back on exit, also on a signal.
#   build_dir=...; source scratch_install.sh
scratch=$(mktemp -d)
manifest=$build_dir/install_manifest.txt
if [ -f "$manifest" ]; then
  cp -p "$manifest" "$scratch/manifest.saved"
fi
cleanup() {
  if [ -f "$scratch/manifest.saved" ]; then
    cp -p "$scratch/manifest.saved" "$manifest"
  else
    rm -f "$manifest"
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE
