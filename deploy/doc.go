// Package deploy holds no code: its tests check the deployment files
// (deploy/otpbot.service, deploy/compose.yaml, deploy/compose.sentinel.yaml,
// the Dockerfile and the Makefile) with what this machine can run, since no container engine or
// init system runs here. A unit file is verified by systemd-analyze when it is
// installed; the Dockerfile and compose file are parsed and cross-checked
// against each other and against the repository they build.
package deploy
