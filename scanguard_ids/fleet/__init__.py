"""Fleet mode: share evidence and decisions with other nodes through one Redis.

codec.py (what crosses Redis, validated), bus.py (redis-py: streams, block keys, errors),
node.py (the publisher and reader threads), evelist.py (Suricata's Redis list output as an EVE
source). The detector stays pure: other nodes' events reach it through Engine.feed_events.
Only imported when fleet.url or eve.redis is set, so redis-py is needed only then.
"""
