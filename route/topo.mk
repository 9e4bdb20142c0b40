libringmq_a_SOURCES += route/topo.c route/topo.h
