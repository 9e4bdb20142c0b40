# docs/: the manual pages and the documentation installed to $(docdir).
# (docs/configuration.md is installed by etc/local.mk, beside the sample config.)
dist_man_MANS = docs/man/ringmq.8 docs/man/ringmq.conf.5 docs/man/ringmqctl.8 \
	docs/man/amqp-perf.1
dist_doc_DATA += docs/ARCHITECTURE.md docs/users.md docs/amqp-perf.md docs/compatibility.md \
	docs/testing.md docs/fuzzing.md
