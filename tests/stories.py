"""Short invented news stories for the identity and dedup tests: our own words, so the tests run
without ../shared, distinct enough from each other that no two are near-copies."""

from __future__ import annotations

STORIES: dict[str, tuple[str, list[str]]] = {
    "harbour": ("Harbour crane collapses during night shift", [
        "A container crane at the eastern harbour collapsed shortly after midnight on Tuesday, "
        "crushing two empty trailers and closing the north quay for at least a week.",
        "No workers were hurt, the port authority said, because the night shift had paused for a "
        "scheduled break twenty minutes before the boom gave way under a heavy reefer unit.",
        "Inspectors from the transport ministry arrived at dawn and sealed off the wreckage. "
        "Shipping lines were told to divert vessels to the western terminal until the quay is "
        "cleared and the remaining cranes have been checked for fatigue cracks.",
    ]),
    "orchard": ("Late frost wipes out half of the valley's apricot harvest", [
        "Growers in the upper valley lost about half of their apricot crop after two nights of "
        "frost in early April killed the blossom on thousands of trees.",
        "Farmers lit straw fires and ran wind machines between the rows, but temperatures fell to "
        "minus four degrees before sunrise, too cold for the young fruit to survive.",
        "The regional cooperative expects prices at the Saturday market to double and has asked "
        "the agriculture office for emergency loans so that seasonal pickers can still be paid.",
    ]),
    "library": ("City library reopens after three years of renovation", [
        "The central library reopened its doors on Monday after a renovation that took three "
        "years, cost forty million and added a rooftop reading garden.",
        "Queues formed on the steps before nine o'clock. Children headed straight for the new "
        "comics floor while older visitors looked for the restored map room and its oak tables.",
        "Opening hours are longer than before the works: the building now stays open until ten "
        "at night on weekdays, and the ground floor study hall never closes during exam weeks.",
    ]),
    "chess": ("Teenager wins national chess title with a final-round sacrifice", [
        "A sixteen-year-old from the mining town of Kessel won the national chess championship on "
        "Sunday, beating the defending champion with a daring rook sacrifice in the last round.",
        "Spectators in the hall gasped when she gave up the rook on move twenty-three; eleven "
        "moves later her opponent resigned, facing unstoppable mate on the back rank.",
        "The title earns her a place at the continental championship in the autumn and a grant "
        "from the federation to pay for a coach and travel to international open tournaments.",
    ]),
    "tram": ("New tram line delayed again over signalling faults", [
        "The opening of the southern tram line has been postponed for a third time after test "
        "runs revealed faults in the signalling software at two busy junctions.",
        "Engineers found that trams approaching the station square were sometimes shown a green "
        "light while a bus lane signal across the tracks was also green.",
        "The transit company now hopes to carry its first passengers in March. Shopkeepers along "
        "the route, who endured two years of roadworks, said they were losing patience.",
    ]),
    "glacier": ("Researchers measure record retreat of mountain glacier", [
        "Scientists who have measured the Ferner glacier every summer since nineteen sixty said "
        "its tongue retreated by ninety metres this year, the largest loss on record.",
        "The team drilled stakes into the ice in June and returned in September to find several "
        "of them lying flat on bare rock, melted out of the surface entirely.",
        "Hut wardens in the area report that a traditional crossing route to the neighbouring "
        "valley has become dangerous because of loose boulders exposed by the melting ice.",
    ]),
}


def story(key: str) -> tuple[str, list[str]]:
    return STORIES[key]
