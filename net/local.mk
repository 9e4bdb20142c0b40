# net/: sockets and the AMQP 0-9-1 wire.
