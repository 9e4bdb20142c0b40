/*
 * Topic exchange trie. Binding keys are split into words on '.' exactly as
 * RabbitMQ's rabbit_db_topic_exchange:split_topic_key does: the empty key
 * has no words; otherwise n dots make n + 1 words, empty words included
 * ("a..b" is a, "", b; ".b" is "", b; "a." is a, ""). Each trie node is
 * one word of a binding key; the bindings hang on the node of their last
 * word (the root for the empty key). Edges live in the vhost's topic_edges
 * map keyed by (parent node, word); the "*" and "#" children are also
 * cached in the parent for the match.
 *
 * A publish runs the trie as an NFA: the set of nodes whose path matches
 * the routing key so far, advanced one word at a time. A "#" node may
 * consume zero words (it joins the set with its parent: the closure) or
 * any number (it stays in the set). Sets hold each node once (stamps), so
 * the match costs O(words x nodes in the set) whatever "#" patterns hold,
 * and it writes only to the vhost's preallocated set arrays.
 * Invariants: every node but the root has a binding or a child; the vhost
 * counts all nodes in topic_nodes and its two sets can hold that many.
 */
#include "route/route_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

struct route_topic_node {
    route_topic_node *parent; /* NULL for the root */
    route_topic_node *star;   /* child for "*" */
    route_topic_node *hash;   /* child for "#" */
    route_binding *bindings;  /* bindings whose key ends here */
    uint32_t binding_count;
    uint32_t children;
    uint64_t stamp;     /* last NFA step that put this node in a set */
    uint64_t edge_hash; /* key in vh->topic_edges */
    bool is_hash;
    uint8_t word_len;
    uint8_t word[];
};

uint32_t route__topic_split(amqp_bytes key, amqp_bytes *words, uint32_t words_max)
{
    ASSERT(words != NULL);
    ASSERT(key.len < words_max);
    if (key.len == 0) return 0;
    uint32_t n = 0, start = 0;
    for (uint32_t i = 0; i <= key.len; i++) {
        if (i == key.len || key.data[i] == '.') {
            words[n++] = (amqp_bytes){key.data + start, i - start};
            start = i + 1;
        }
    }
    ASSERT(n >= 1 && n <= words_max);
    return n;
}

static amqp_bytes node_word(const route_topic_node *n) { return (amqp_bytes){n->word, n->word_len}; }

static route_topic_node *node_child(const route_vhost *vh, const route_topic_node *n, amqp_bytes w)
{
    route_map_iter it;
    for (route_topic_node *c = route_map_first(&vh->topic_edges, route_hash_owned(n, w), &it);
         c != NULL; c = route_map_next(&it)) {
        if (c->parent == n && amqp_bytes_equal(node_word(c), w)) return c;
    }
    return NULL;
}

static route_topic_node *node_new(route_vhost *vh, route_topic_node *parent, amqp_bytes w)
{
    ASSERT(w.len <= LIMIT_SHORTSTR_BYTES_MAX);
    route_topic_node *n = calloc(1, sizeof(*n) + w.len);
    ASSERT(n != NULL);
    n->parent = parent;
    n->word_len = (uint8_t)w.len;
    if (w.len > 0) memcpy(n->word, w.data, w.len);
    vh->topic_nodes++;
    if (vh->topic_nodes > vh->topic_set_cap) {
        uint32_t cap = vh->topic_set_cap == 0 ? 64u : vh->topic_set_cap * 2u;
        free(vh->topic_sets);
        vh->topic_sets = calloc(2u * (size_t)cap, sizeof(*vh->topic_sets));
        ASSERT(vh->topic_sets != NULL);
        vh->topic_set_cap = cap;
    }
    if (parent == NULL) return n;
    n->edge_hash = route_hash_owned(parent, w);
    route_map_insert(&vh->topic_edges, n->edge_hash, n);
    parent->children++;
    if (amqp_bytes_equal(w, amqp_cstr("*"))) parent->star = n;
    if (amqp_bytes_equal(w, amqp_cstr("#"))) {
        parent->hash = n;
        n->is_hash = true;
    }
    return n;
}

static void node_free(route_vhost *vh, route_topic_node *n)
{
    ASSERT(n->binding_count == 0 && n->children == 0);
    ASSERT(vh->topic_nodes > 0);
    route_topic_node *p = n->parent;
    if (p != NULL) {
        bool removed = route_map_remove(&vh->topic_edges, n->edge_hash, n);
        ASSERT(removed);
        p->children--;
        if (p->star == n) p->star = NULL;
        if (p->hash == n) p->hash = NULL;
    }
    vh->topic_nodes--;
    free(n);
}

void route__topic_init(route_vhost *vh, route_exchange *x)
{
    ASSERT(x->info.type == ROUTE_EXCHANGE_TOPIC && x->topic_root == NULL);
    x->topic_root = node_new(vh, NULL, (amqp_bytes){NULL, 0});
    ASSERT(x->topic_root != NULL);
}

void route__topic_fini(route_vhost *vh, route_exchange *x)
{
    ASSERT(x->topic_root != NULL);
    ASSERT(x->topic_root->children == 0 && x->topic_root->binding_count == 0);
    node_free(vh, x->topic_root);
    x->topic_root = NULL;
}

void route__topic_add(route_vhost *vh, route_exchange *x, route_binding *b)
{
    ASSERT(x->topic_root != NULL && b->node == NULL);
    amqp_bytes words[LIMIT_ROUTE_TOPIC_WORDS_MAX];
    uint32_t count = route__topic_split((amqp_bytes){b->key, b->key_len}, words, ARRAY_LEN(words));
    route_topic_node *n = x->topic_root;
    for (uint32_t i = 0; i < count; i++) {
        route_topic_node *c = node_child(vh, n, words[i]);
        n = c != NULL ? c : node_new(vh, n, words[i]);
    }
    b->node = n;
    b->node_prev = NULL;
    b->node_next = n->bindings;
    if (n->bindings != NULL) n->bindings->node_prev = b;
    n->bindings = b;
    n->binding_count++;
}

void route__topic_remove(route_vhost *vh, route_binding *b)
{
    route_topic_node *n = b->node;
    ASSERT(n != NULL && n->binding_count > 0);
    if (b->node_prev != NULL) b->node_prev->node_next = b->node_next;
    else n->bindings = b->node_next;
    if (b->node_next != NULL) b->node_next->node_prev = b->node_prev;
    n->binding_count--;
    b->node = NULL;
    /* Prune the path: nodes without bindings or children go, the root stays. */
    while (n->parent != NULL && n->binding_count == 0 && n->children == 0) {
        route_topic_node *p = n->parent;
        node_free(vh, n);
        n = p;
    }
}

/* Adds n and the "#" nodes reachable from it by consuming no word. */
static void set_add_closure(route_topic_node **set, uint32_t *count, route_topic_node *n,
                            uint64_t stamp)
{
    for (; n != NULL && n->stamp != stamp; n = n->hash) {
        n->stamp = stamp;
        set[(*count)++] = n;
    }
}

void route__topic_match(route_ctx *ctx, const route_exchange *x, amqp_bytes routing_key)
{
    route_vhost *vh = ctx->vh;
    ASSERT(x->topic_root != NULL);
    ASSERT(vh->topic_set_cap >= vh->topic_nodes);
    amqp_bytes words[LIMIT_ROUTE_TOPIC_WORDS_MAX];
    uint32_t count = route__topic_split(routing_key, words, ARRAY_LEN(words));
    route_topic_node **cur = vh->topic_sets, **next = vh->topic_sets + vh->topic_set_cap;
    uint32_t cur_n = 0;
    set_add_closure(cur, &cur_n, x->topic_root, ++vh->topic_stamp);
    for (uint32_t i = 0; i < count && cur_n > 0; i++) {
        uint64_t stamp = ++vh->topic_stamp;
        uint32_t next_n = 0;
        for (uint32_t k = 0; k < cur_n; k++) {
            route_topic_node *s = cur[k];
            if (s->is_hash) set_add_closure(next, &next_n, s, stamp);
            if (s->children == 0) continue;
            set_add_closure(next, &next_n, node_child(vh, s, words[i]), stamp);
            set_add_closure(next, &next_n, s->star, stamp);
        }
        ASSERT(next_n <= vh->topic_nodes);
        route_topic_node **t = cur;
        cur = next;
        next = t;
        cur_n = next_n;
    }
    for (uint32_t k = 0; k < cur_n; k++) {
        for (const route_binding *b = cur[k]->bindings; b != NULL; b = b->node_next) route__emit(ctx, b);
    }
}
