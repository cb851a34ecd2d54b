import type { Message } from 'iflow';
import { mapOrder, type Order } from '../../../mapping.ts';

/** Reshapes the order; the same function the raw baseline calls. */
export default function processData(message: Message) {
  message.setBody(mapOrder(message.getBodyAsJson<Order>()));
}
