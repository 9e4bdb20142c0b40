# etc/: the sample configuration, installed to $(sysconfdir), and its documentation.
sysconf_DATA += etc/ringmq.conf
dist_doc_DATA += docs/configuration.md
EXTRA_DIST += etc/ringmq.conf
