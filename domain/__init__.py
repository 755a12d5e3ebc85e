"""Pure rules of Subscriber Profiles: no I/O, no clock, no asyncio. Time comes from events."""
