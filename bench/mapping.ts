/**
 * The mapping both sides of the benchmark run: iflow's script step (flows/passthrough/scripts/map.ts) and the raw
 * Fastify passthrough (raw.ts) import this one function, so they do exactly the same work per message.
 */

export interface OrderItem {
  sku: string;
  description: string;
  quantity: number;
  unitPrice: number;
}

export interface Order {
  orderId: string;
  createdAt: string;
  currency: string;
  customer: { id: string; name: string; email: string };
  shipTo: { street: string; city: string; postalCode: string; country: string };
  items: OrderItem[];
  notes?: string;
}

export interface MappedOrder {
  OrderNumber: string;
  OrderDate: string;
  SoldToParty: string;
  CustomerName: string;
  ShipToCountry: string;
  Currency: string;
  Items: { ItemNo: number; Material: string; Text: string; Quantity: number; NetPrice: number; NetAmount: number }[];
  ItemCount: number;
  TotalAmount: number;
}

const cents = (value: number) => Math.round(value * 100) / 100;

/** Renames a few fields, flattens customer and address, and computes each item's amount and the total. */
export function mapOrder(order: Order): MappedOrder {
  let total = 0;
  const items = order.items.map((item, index) => {
    const amount = cents(item.quantity * item.unitPrice);
    total += amount;
    return { ItemNo: (index + 1) * 10, Material: item.sku, Text: item.description, Quantity: item.quantity, NetPrice: item.unitPrice, NetAmount: amount };
  });
  return {
    OrderNumber: order.orderId,
    OrderDate: order.createdAt.slice(0, 10),
    SoldToParty: order.customer.id,
    CustomerName: order.customer.name,
    ShipToCountry: order.shipTo.country,
    Currency: order.currency,
    Items: items,
    ItemCount: items.length,
    TotalAmount: cents(total),
  };
}

/** A sample order of about 1 KB as JSON. */
export function sampleOrder(): Order {
  const items: OrderItem[] = [];
  for (let i = 1; i <= 6; i++) {
    items.push({ sku: `MAT-${String(1000 + i)}`, description: `Hex bolt M${i + 5} x ${i * 10} mm, zinc plated`, quantity: i * 3, unitPrice: cents(0.37 * i + 1.05) });
  }
  return {
    orderId: 'PO-2024-000123',
    createdAt: '2024-05-17T09:30:00Z',
    currency: 'EUR',
    customer: { id: 'C-100042', name: 'Muster Maschinenbau GmbH', email: 'purchasing@muster-maschinenbau.example' },
    shipTo: { street: 'Industriestrasse 12', city: 'Walldorf', postalCode: '69190', country: 'DE' },
    items,
    notes: 'Deliver to gate 3 between 08:00 and 16:00. Call the warehouse 30 minutes ahead.',
  };
}
