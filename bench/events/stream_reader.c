// stream_reader: holds N GET /v1/events streams open against 127.0.0.1:PORT, as N dashboards
// would, and checks that every stream receives every event, or a reset.
//
// Usage: stream_reader PORT N SUMMARY_FILE
//
// Each stream is unfiltered and without a key, so it must see every job change: after its
// `ready` event, job event IDs must follow one another without a gap. A `reset` (the server
// found the stream too far behind, and closed it) is allowed: the reader then reconnects with
// Last-Event-ID, as the dashboard does, and counts it. On SIGTERM (the bench stopping the
// server's process group) it writes one JSON line of totals to SUMMARY_FILE and exits.
// C rather than Python: at tens of thousands of events a second per stream, a Python reader
// could not keep up, and the bench would measure the reader instead of the server.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int fd;
    char line[4097];       // one more for the NUL take_line puts after a line
    size_t line_length;
    long long pending_id;      // the id: of the event being read, or -1
    char pending_event[64];
    long long last_id;         // the last event id seen, or -1 before `ready`
    int last_was_reset;
    int ended;                 // the chunked reply's last chunk ("0") came after a reset
    long long events, resets, gaps, reconnects;
} Stream;

static volatile sig_atomic_t stopping = 0;
static void on_term(int signal_number) { (void)signal_number; stopping = 1; }

static int port;

static int open_stream(Stream *stream) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) { close(fd); return -1; }
    char request[256];
    int length;
    if (stream->last_id >= 0)
        length = snprintf(request, sizeof request, "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: %lld\r\n\r\n", stream->last_id);
    else
        length = snprintf(request, sizeof request, "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    if (write(fd, request, (size_t)length) != length) { close(fd); return -1; }
    stream->fd = fd;
    stream->line_length = 0;
    stream->pending_id = -1;
    stream->pending_event[0] = 0;
    stream->ended = 0;
    return 0;
}

// One complete event (at its blank line).
static void event_done(Stream *stream) {
    if (stream->pending_id < 0 || !stream->pending_event[0]) return;
    long long id = stream->pending_id;
    if (strcmp(stream->pending_event, "ready") == 0) {
        // At first, where the stream starts; after a reconnect, the replay must have reached it.
        if (stream->last_id >= 0 && id != stream->last_id && !stream->last_was_reset) stream->gaps++;
        stream->last_id = id;
    } else if (strcmp(stream->pending_event, "reset") == 0) {
        stream->resets++;
        stream->last_was_reset = 1;
        stream->last_id = id;
    } else {
        if (stream->last_id >= 0 && id != stream->last_id + 1 && !stream->last_was_reset) stream->gaps++;
        stream->last_was_reset = 0;
        stream->last_id = id;
        stream->events++;
    }
    stream->pending_id = -1;
    stream->pending_event[0] = 0;
}

static void take_line(Stream *stream, char *line, size_t length) {
    if (length > 0 && line[length - 1] == '\r') length--;
    line[length] = 0; // strtoll below must stop at the line's end, not run into an older line's bytes
    if (length == 0) { event_done(stream); return; }
    // The server ends a reset stream's reply (the connection may stay open for another request).
    if (stream->last_was_reset && length == 1 && line[0] == '0') { stream->ended = 1; return; }
    if (length > 4 && memcmp(line, "id: ", 4) == 0) {
        stream->pending_id = strtoll(line + 4, NULL, 10);
    } else if (length > 7 && memcmp(line, "event: ", 7) == 0) {
        size_t name = length - 7 < sizeof stream->pending_event - 1 ? length - 7 : sizeof stream->pending_event - 1;
        memcpy(stream->pending_event, line + 7, name);
        stream->pending_event[name] = 0;
    }
    // data:, comments, HTTP headers and chunk-size lines need nothing here.
}

static void take_bytes(Stream *stream, const char *bytes, size_t count) {
    // memchr, not a loop per byte: the reader must cost the load generator's core little.
    while (count > 0) {
        const char *newline = memchr(bytes, '\n', count);
        size_t part = newline ? (size_t)(newline - bytes) : count;
        size_t room = sizeof stream->line - 1 - stream->line_length;
        size_t copied = part < room ? part : room;
        memcpy(stream->line + stream->line_length, bytes, copied);
        stream->line_length += copied;
        if (!newline) return;
        take_line(stream, stream->line, stream->line_length);
        stream->line_length = 0;
        bytes = newline + 1;
        count -= part + 1;
    }
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: stream_reader PORT N SUMMARY_FILE\n"); return 2; }
    port = atoi(argv[1]);
    int count = atoi(argv[2]);
    const char *summary_path = argv[3];
    struct sigaction action = { .sa_handler = on_term };
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    Stream *streams = calloc((size_t)count, sizeof *streams);
    int poller = epoll_create1(0);
    int opened = 0, refused = 0;
    for (int index = 0; index < count; index++) {
        streams[index].last_id = -1;
        if (open_stream(&streams[index]) != 0) { streams[index].fd = -1; refused++; continue; }
        struct epoll_event interest = { .events = EPOLLIN, .data.u32 = (unsigned)index };
        epoll_ctl(poller, EPOLL_CTL_ADD, streams[index].fd, &interest);
        opened++;
    }
    static char buffer[1 << 18];
    long long bytes = 0;
    int closed = 0;
    while (!stopping) {
        struct epoll_event ready[64];
        int n = epoll_wait(poller, ready, 64, 200);
        if (n < 0 && errno == EINTR) continue;
        for (int item = 0; item < n; item++) {
            Stream *stream = &streams[ready[item].data.u32];
            ssize_t got = read(stream->fd, buffer, sizeof buffer);
            if (got > 0) {
                bytes += got;
                take_bytes(stream, buffer, (size_t)got);
                if (!stream->ended) continue;
            } else if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
                continue;
            }
            epoll_ctl(poller, EPOLL_CTL_DEL, stream->fd, NULL);
            close(stream->fd);
            stream->fd = -1;
            // Closed after a reset: come back from the reset's id, as a dashboard does.
            if (stream->last_was_reset && !stopping && open_stream(stream) == 0) {
                stream->reconnects++;
                struct epoll_event interest = { .events = EPOLLIN, .data.u32 = ready[item].data.u32 };
                epoll_ctl(poller, EPOLL_CTL_ADD, stream->fd, &interest);
            } else {
                closed++;
            }
        }
    }
    long long events = 0, resets = 0, gaps = 0, reconnects = 0, fewest = -1, most = 0;
    for (int index = 0; index < count; index++) {
        Stream *stream = &streams[index];
        events += stream->events; resets += stream->resets; gaps += stream->gaps; reconnects += stream->reconnects;
        if (fewest < 0 || stream->events < fewest) fewest = stream->events;
        if (stream->events > most) most = stream->events;
    }
    FILE *summary = fopen(summary_path, "w");
    if (summary) {
        fprintf(summary, "{\"streams\":%d,\"refused\":%d,\"closed\":%d,\"events\":%lld,\"fewest_per_stream\":%lld,\"most_per_stream\":%lld,"
                         "\"gaps\":%lld,\"resets\":%lld,\"reconnects\":%lld,\"bytes\":%lld}\n",
                opened, refused, closed, events, fewest, most, gaps, resets, reconnects, bytes);
        fclose(summary);
    }
    return 0;
}
