# route/: the routing replica (exchanges, queue directory, bindings, matching).
libringmq_a_SOURCES += route/route.h route/route_internal.h route/route_map.h route/route_map.c \
	route/route_vhost.c route/route_exchange.c route/route_binding.c route/route_topic.c \
	route/route_headers.c route/route_match.c
