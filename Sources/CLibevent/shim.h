// libevent's event-config.h defines _GNU_SOURCE; including <features.h> first keeps glibc's
// structs identical to the ones Swift's other C modules see (see shared/libevent-swift.md).
#include <features.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
