"""The reference's six watches and four tags, with images the project draws itself (SVG under ``assets``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedProduct:
    id: str
    name: str
    description: str
    price: int
    count: int
    image: str
    tags: tuple[str, ...]

    @property
    def image_url(self) -> str:
        return f"/assets/{self.image}"


TAGS: tuple[tuple[str, str], ...] = (("smart", "Smart"), ("dress", "Dress"), ("luxury", "Luxury"),
                                     ("casual", "Casual"))

PRODUCTS: tuple[SeedProduct, ...] = (
    SeedProduct("6d62d909-f957-430e-8689-b5129c0bb75e", "Pocket Watch", "Properly dapper.", 385, 33,
                "pocket_watch.svg", ("dress",)),
    SeedProduct("a0a4f044-b040-410d-8ead-4de0446aec7e", "Wood Watch", "Looks like a tree", 50, 115,
                "wood_watch.svg", ("casual",)),
    SeedProduct("808a2de1-1aaa-4c25-a9b9-6612e8f29a38", "Chronograf Classic", "Spend that IPO money", 5100, 9,
                "chrono_classic.svg", ("dress", "luxury")),
    SeedProduct("510a0d7e-8e83-4193-b483-e27e09ddc34d", "Gentleman", "Touch of class for a bargain.", 795, 51,
                "gentleman.svg", ("dress",)),
    SeedProduct("ee3715be-b4ba-11ea-b3de-0242ac130004", "Smart 3.0", "Can tell you what you want for breakfast",
                650, 9, "smart_1.svg", ("smart", "dress")),
    SeedProduct("f4ebd070-b4ba-11ea-b3de-0242ac130004", "FitnessX", "Touch of class for a bargain.", 180, 76,
                "smart_2.svg", ("smart", "dress")),
)
