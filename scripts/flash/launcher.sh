#!/bin/sh
# /opt/cityedge/bin/cityedge: runs the daemon on the bundled node when there is one, else the
# system's. exec keeps the pid, so systemd's MAINPID is the daemon's own.
if [ -x /opt/cityedge/bin/node ]; then NODE=/opt/cityedge/bin/node; else NODE=node; fi
exec "$NODE" /opt/cityedge/app/dist/runtime/cli.js "$@"
