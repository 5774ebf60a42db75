"""The seed catalog: categories and products (prices in euro cents, slugs as ids)."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    icon: str

    @property
    def image(self) -> str:
        return f"/products/images/{self.id}.svg"


@dataclass(frozen=True)
class SeedProduct:
    id: str
    name: str
    category: str
    price_cents: int
    stock: int
    icon: str
    description: str
    # Shown only by the v2 (canary) build.
    badge: str | None = None
    _: KW_ONLY
    weight_grams: int  # one unit as shipped, packaging included: what order asks shipping to quote


CATEGORIES = (
    Category("coffee", "Coffee & Tea", "☕"),
    Category("kitchen", "Kitchen", "🍳"),
    Category("outdoor", "Outdoor", "⛺"),
    Category("electronics", "Electronics", "🎧"),
    Category("books", "Books", "📚"),
    Category("home", "Home & Living", "🪴"),
)

PRODUCTS = (
    SeedProduct(
        "ethiopian-yirgacheffe-beans",
        "Ethiopian Yirgacheffe Beans 500 g",
        "coffee",
        1650,
        120,
        "☕",
        "Light roast with notes of bergamot and apricot. Whole beans, roasted weekly.",
        "staff pick",
        weight_grams=550,
    ),
    SeedProduct(
        "colombia-decaf-beans",
        "Colombia Decaf Beans 250 g",
        "coffee",
        990,
        60,
        "☕",
        "Sugar-cane decaffeinated, medium roast, chocolate and caramel.",
        weight_grams=290,
    ),
    SeedProduct(
        "sencha-green-tea",
        "Japanese Sencha Green Tea 100 g",
        "coffee",
        1200,
        80,
        "🍵",
        "Steamed first-flush sencha from Shizuoka, loose leaf.",
        weight_grams=140,
    ),
    SeedProduct(
        "pour-over-dripper",
        "Ceramic Pour-Over Dripper",
        "coffee",
        2450,
        40,
        "☕",
        "Size 02 porcelain dripper with spiral ribs for an even extraction.",
        "new",
        weight_grams=450,
    ),
    SeedProduct(
        "gooseneck-kettle",
        "Gooseneck Kettle 1 l",
        "coffee",
        4900,
        25,
        "🫖",
        "Stainless steel kettle with a thermometer for precise pouring.",
        weight_grams=1100,
    ),
    SeedProduct(
        "cast-iron-skillet",
        "Cast-Iron Skillet 26 cm",
        "kitchen",
        3995,
        35,
        "🍳",
        "Pre-seasoned cast iron for searing, baking and campfires.",
        "bestseller",
        weight_grams=2600,
    ),
    SeedProduct(
        "chef-knife",
        "Chef's Knife 20 cm",
        "kitchen",
        7900,
        20,
        "🔪",
        "Forged stainless steel blade, full tang, pakkawood handle.",
        weight_grams=350,
    ),
    SeedProduct(
        "bamboo-cutting-board",
        "Bamboo Cutting Board",
        "kitchen",
        2200,
        70,
        "🪵",
        "Large end-grain board with a juice groove, kind to knife edges.",
        weight_grams=1200,
    ),
    SeedProduct(
        "enamel-dutch-oven",
        "Enamel Dutch Oven 4 l",
        "kitchen",
        8900,
        15,
        "🍲",
        "Enamelled cast iron casserole for stews, soups and bread.",
        weight_grams=4800,
    ),
    SeedProduct(
        "digital-kitchen-scale",
        "Digital Kitchen Scale",
        "kitchen",
        1899,
        90,
        "⚖️",
        "Weighs up to 5 kg in 1 g steps, with tare and a timer.",
        weight_grams=600,
    ),
    SeedProduct(
        "trail-backpack-30l",
        "Trail Backpack 30 l",
        "outdoor",
        6900,
        30,
        "🎒",
        "Light day pack with a rain cover, hip belt and hydration sleeve.",
        "new",
        weight_grams=1100,
    ),
    SeedProduct(
        "two-person-tent",
        "Two-Person Tent",
        "outdoor",
        14900,
        12,
        "⛺",
        "Freestanding three-season tent, 2.1 kg, sets up in five minutes.",
        weight_grams=2300,
    ),
    SeedProduct(
        "insulated-bottle",
        "Insulated Bottle 750 ml",
        "outdoor",
        2495,
        150,
        "🧴",
        "Keeps drinks cold for 24 hours or hot for 12. Leak-proof lid.",
        weight_grams=420,
    ),
    SeedProduct(
        "headlamp",
        "Rechargeable Headlamp",
        "outdoor",
        2990,
        55,
        "🔦",
        "350 lumen headlamp with a red night mode, charges over USB-C.",
        weight_grams=150,
    ),
    SeedProduct(
        "noise-cancelling-headphones",
        "Noise-Cancelling Headphones",
        "electronics",
        19900,
        18,
        "🎧",
        "Over-ear wireless headphones with 30 hours of battery life.",
        "staff pick",
        weight_grams=650,
    ),
    SeedProduct(
        "mechanical-keyboard",
        "Mechanical Keyboard",
        "electronics",
        10900,
        22,
        "⌨️",
        "Compact 75% layout, hot-swappable tactile switches, USB-C.",
        weight_grams=1100,
    ),
    SeedProduct(
        "usb-c-charger-65w",
        "USB-C Charger 65 W",
        "electronics",
        3900,
        100,
        "🔌",
        "Two-port GaN charger for a laptop and a phone at the same time.",
        weight_grams=220,
    ),
    SeedProduct(
        "e-reader",
        "E-Reader 6 inch",
        "electronics",
        12900,
        14,
        "📱",
        "Glare-free 300 ppi screen with a warm front light, waterproof.",
        "new",
        weight_grams=300,
    ),
    SeedProduct(
        "book-kubernetes-up-and-running",
        "Kubernetes: Up and Running",
        "books",
        5499,
        40,
        "📘",
        "The classic introduction to deploying and running Kubernetes workloads.",
        weight_grams=600,
    ),
    SeedProduct(
        "book-istio-in-action",
        "Istio in Action",
        "books",
        4999,
        30,
        "📗",
        "Traffic management, security and observability with the Istio service mesh.",
        "staff pick",
        weight_grams=750,
    ),
    SeedProduct(
        "book-designing-data-intensive-applications",
        "Designing Data-Intensive Applications",
        "books",
        4599,
        35,
        "📕",
        "Reliable, scalable and maintainable systems, from storage engines to stream processing.",
        "bestseller",
        weight_grams=1000,
    ),
    SeedProduct(
        "book-site-reliability-engineering",
        "Site Reliability Engineering",
        "books",
        4299,
        25,
        "📙",
        "How Google runs production systems: SLOs, error budgets and toil.",
        weight_grams=1100,
    ),
    SeedProduct(
        "linen-throw-blanket",
        "Linen Throw Blanket",
        "home",
        5900,
        28,
        "🛋️",
        "Stonewashed European linen, 130 x 170 cm, in sage green.",
        weight_grams=900,
    ),
    SeedProduct(
        "ceramic-planter",
        "Ceramic Planter 15 cm",
        "home",
        1995,
        65,
        "🪴",
        "Matte glazed planter with a drainage hole and a saucer.",
        weight_grams=1300,
    ),
    SeedProduct(
        "scented-candle",
        "Soy Candle Cedar & Fig",
        "home",
        1650,
        110,
        "🕯️",
        "Hand-poured soy wax candle, 45 hours of burn time.",
        "new",
        weight_grams=450,
    ),
    SeedProduct(
        "desk-lamp",
        "Oak Desk Lamp",
        "home",
        6450,
        20,
        "💡",
        "Dimmable LED desk lamp with an oak base and a linen shade.",
        weight_grams=1800,
    ),
)

CATEGORY_IDS = frozenset(category.id for category in CATEGORIES)
