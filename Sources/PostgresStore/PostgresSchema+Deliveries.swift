extension PostgresSchema {
    /// Webhook deliveries claimed across nodes (``PostgresJobStore/claimWebhookEvents(limit:)``).
    ///
    /// - `webhook_events.node`: the node that holds a pending event and alone may attempt it
    ///   (NULL: nobody; the next claim pass of any node takes it once it is due). Written with the
    ///   job's final state by the finishing node, by a claim, or by a redelivery; cleared by the
    ///   rescue sweep when the node's lease expired, and by the node itself at a clean stop.
    /// - `webhook_events_unclaimed`: the claim pass walks the due unclaimed events in order.
    /// - `webhook_events_by_node`: a stop and the sweep find a node's pending events.
    static let version5 = """
        ALTER TABLE webhook_events ADD COLUMN node uuid;
        CREATE INDEX webhook_events_unclaimed ON webhook_events (coalesce(next_attempt_at, 0), job_id)
            WHERE state = 'pending' AND node IS NULL;
        CREATE INDEX webhook_events_by_node ON webhook_events (node) WHERE state = 'pending' AND node IS NOT NULL;
        """
}
