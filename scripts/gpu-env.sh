# gpu-env.sh — sourced by the GPU-machine scripts: nvcc on PATH, and the
# build dependencies (cJSON, PCRE2, utf8proc) unpacked from the .deb files in
# .gpu-deps/ (scripts/fetch-gpu-deps.sh) when the machine lacks them, since
# it has no network.
export PATH=/usr/local/cuda/bin:$PATH
if [ -d .gpu-deps ] && [ ! -f /usr/include/cjson/cJSON.h ]; then
  mkdir -p /opt/mddeps
  for f in .gpu-deps/*.deb; do dpkg -x "$f" /opt/mddeps; done
  export CMAKE_PREFIX_PATH=/opt/mddeps/usr
  export LD_LIBRARY_PATH=/opt/mddeps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
fi
export MEGADELTA_CACHE=/tmp/md-cache
