# Packaging, install, systemd unit: mk/pkg.mk
APT_PKGS += systemd dpkg
