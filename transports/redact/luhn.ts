/** Card numbers: what makes a 13-19 digit run a card number rather than an id. */

/** Luhn checksum (ISO/IEC 7812). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Issuer prefixes start with 2 to 6 (Mastercard 2-series and 5, Amex and JCB 3, Visa 4, Discover 6). */
export const isCardNumber = (digits: string) =>
  digits.length >= 13 &&
  digits.length <= 19 &&
  digits.charCodeAt(0) >= 50 &&
  digits.charCodeAt(0) <= 54 &&
  luhnValid(digits);
