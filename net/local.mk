# net/: sockets and the AMQP 0-9-1 wire.
# AMQP 0-9-1 wire codec: framing, methods (generated from amqp_method_table.h),
# field tables, content-header properties.
libringmq_a_SOURCES += \
	net/amqp_types.h net/amqp_wire.h net/amqp_cursor.h net/amqp_error.c \
	net/amqp_frame.c net/amqp_frame.h \
	net/amqp_method_table.h net/amqp_method.c net/amqp_method.h \
	net/amqp_table.c net/amqp_table.h \
	net/amqp_props.c net/amqp_props.h
