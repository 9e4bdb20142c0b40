libringmq_a_SOURCES += route/topo.c route/topo.h
libringmq_a_SOURCES += route/topo_recover.c
