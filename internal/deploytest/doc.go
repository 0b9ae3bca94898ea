// Package deploytest checks what runs skuflow in containers, where no
// Docker engine is needed to notice it broke: the Dockerfile and
// deploy/build-static.sh (the static binaries it builds, built here the
// same way), docker-compose.yml (through `docker-compose config`, and
// against the configuration keys the services read), and the compose
// stack's Prometheus configuration beside the local stack's. It has no
// code of its own: its tests are the point.
package deploytest
